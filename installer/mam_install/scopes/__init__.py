"""The two scopes, workspace and host: their options, planners and what the driver needs of them."""
