"""The API's routers: tasks, HTTP agents, and the system routes (config, report, metrics)."""
