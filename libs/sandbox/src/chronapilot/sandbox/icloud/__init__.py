"""The iCloud stand-in: Radicale as a real CalDAV server, its users file and its demo data."""

from chronapilot.sandbox.icloud.demo_data import DemoCalendar, DemoDataset, DemoResource, week_anchor
from chronapilot.sandbox.icloud.seed import DEMO_EMAIL, ICloudAccount, SeedError, seed_account
from chronapilot.sandbox.icloud.server import RadicaleConfig, RadicaleServer, RadicaleStartError
from chronapilot.sandbox.icloud.users import AppleIdCredentials, UsersFile, new_app_specific_password

__all__ = [
    "DEMO_EMAIL",
    "AppleIdCredentials",
    "DemoCalendar",
    "DemoDataset",
    "DemoResource",
    "ICloudAccount",
    "RadicaleConfig",
    "RadicaleServer",
    "RadicaleStartError",
    "SeedError",
    "UsersFile",
    "new_app_specific_password",
    "seed_account",
    "week_anchor",
]
