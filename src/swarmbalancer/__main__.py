"""`python -m swarmbalancer`: the `swarmbalancer` command."""

from swarmbalancer.cli.app import main

main()
