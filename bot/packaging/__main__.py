"""`python -m bot.packaging`: redraw appPackage/color.png and outline.png."""

from bot.packaging.icons import write_icons
from bot.packaging.manifest import TEMPLATE_DIR

for path in write_icons(TEMPLATE_DIR):
    print(path)
