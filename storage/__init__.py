"""Storage: tables, engines and sessions, migrations. Imports nothing from bot/handlers/scheduler."""
