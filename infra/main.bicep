// Nurture on Azure: Azure Bot (Teams channel) → App Service for Linux (container) → PostgreSQL Flexible Server,
// secrets in Key Vault (read through a user-assigned managed identity), telemetry in Application Insights.
// Deploy: az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.json
targetScope = 'resourceGroup'

@description('Short prefix for every resource name (letters and digits).')
@minLength(3)
@maxLength(12)
param prefix string

param location string = resourceGroup().location

@description('Container image to run, e.g. myregistry.azurecr.io/nurture:1.0.0')
param containerImage string

@description('How the bot authenticates: SingleTenant (app registration + secret) or UserAssignedMSI (no secret).')
@allowed([
  'SingleTenant'
  'UserAssignedMSI'
])
param botAppType string = 'UserAssignedMSI'

@description('SingleTenant only: the Entra app registration (client) id of the bot.')
param botAppId string = ''

@description('SingleTenant only: the app registration client secret. Stored in Key Vault, never in app settings.')
@secure()
param botAppPassword string = ''

@description('Comma-separated tenant ids allowed to use the bot (NURTURE_ALLOWED_TENANTS).')
param allowedTenants string

@description('The vendor app name shown on cards.')
param productName string = 'Contoso Insights'

@description('Customer success managers (AAD object ids, comma-separated).')
param csmIds string = ''

param postgresAdminLogin string = 'nurtureadmin'

@secure()
param postgresAdminPassword string

@allowed([
  'B1'
  'P0v3'
  'P1v3'
])
param appServiceSku string = 'P0v3'

@allowed([
  'F0'
  'S1'
])
param botSku string = 'S1'

var suffix = uniqueString(resourceGroup().id, prefix)
var siteName = '${prefix}-bot-${suffix}'
var useMsi = botAppType == 'UserAssignedMSI'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6' // built-in role: Key Vault Secrets User

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id-${suffix}'
  location: location
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-ai-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: '${prefix}-pg-${suffix}'
  location: location
  sku: {
    name: 'Standard_B1ms'
    tier: 'Burstable'
  }
  properties: {
    version: '16'
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    storage: { storageSizeGB: 32 }
    backup: {
      backupRetentionDays: 14
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: { mode: 'Disabled' }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: postgres
  name: 'nurture'
}

resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: postgres
  name: 'AllowAzureServices'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: '${prefix}kv${suffix}'
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    enablePurgeProtection: true
  }
}

resource databaseUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'database-url'
  properties: {
    value: 'postgresql+asyncpg://${postgresAdminLogin}:${uriComponent(postgresAdminPassword)}@${postgres.properties.fullyQualifiedDomainName}:5432/${database.name}?ssl=require'
  }
}

resource botPassword 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!useMsi) {
  parent: vault
  name: 'bot-app-password'
  properties: {
    value: botAppPassword
  }
}

resource vaultAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${prefix}-plan-${suffix}'
  location: location
  kind: 'linux'
  sku: { name: appServiceSku }
  properties: { reserved: true }
}

var identitySettings = useMsi
  ? [
      { name: 'MicrosoftAppType', value: 'UserAssignedMSI' }
      { name: 'MicrosoftAppId', value: identity.properties.clientId }
      { name: 'MicrosoftAppTenantId', value: subscription().tenantId }
    ]
  : [
      { name: 'MicrosoftAppType', value: 'SingleTenant' }
      { name: 'MicrosoftAppId', value: botAppId }
      { name: 'MicrosoftAppTenantId', value: subscription().tenantId }
      { name: 'MicrosoftAppPassword', value: '@Microsoft.KeyVault(SecretUri=${botPassword!.properties.secretUri})' }
    ]

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: siteName
  location: location
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      linuxFxVersion: 'DOCKER|${containerImage}'
      alwaysOn: true
      healthCheckPath: '/healthz'
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: concat(identitySettings, [
        { name: 'WEBSITES_PORT', value: '3978' }
        { name: 'NURTURE_DATABASE_URL', value: '@Microsoft.KeyVault(SecretUri=${databaseUrl.properties.secretUri})' }
        { name: 'NURTURE_ALLOWED_TENANTS', value: allowedTenants }
        { name: 'NURTURE_PRODUCT_NAME', value: productName }
        { name: 'NURTURE_CSM_IDS', value: csmIds }
        { name: 'NURTURE_PUBLIC_HOSTNAME', value: '${siteName}.azurewebsites.net' }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
      ])
    }
  }
  dependsOn: [
    vaultAccess
  ]
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${prefix}-azurebot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: { name: botSku }
  properties: {
    displayName: '${productName} tips'
    endpoint: 'https://${site.properties.defaultHostName}/api/messages'
    msaAppId: useMsi ? identity.properties.clientId : botAppId
    msaAppType: botAppType
    msaAppTenantId: subscription().tenantId
    msaAppMSIResourceId: useMsi ? identity.id : null
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: { isEnabled: true }
  }
}

@description('Messaging endpoint registered on the Azure Bot.')
output messagingEndpoint string = 'https://${site.properties.defaultHostName}/api/messages'

@description('MicrosoftAppId for `nurture package` (the bot id in the Teams manifest).')
output botAppId string = useMsi ? identity.properties.clientId : botAppId

output publicHostname string = site.properties.defaultHostName
