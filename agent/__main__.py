"""``python -m agent`` runs the agent command line (used by ``khien demo``)."""

from agent.cli import main

raise SystemExit(main())
