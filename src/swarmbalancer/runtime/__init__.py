"""The embedded asyncio runtime: it executes the coordinator's decisions against real handlers."""
