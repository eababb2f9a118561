"""The `minna-tasks` command line (installed as the package `minna_tasks_cli`)."""
