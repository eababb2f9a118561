"""`python -m minna_tasks` runs the `minna-tasks` command line."""

from minna_tasks_cli.main import main

main()
