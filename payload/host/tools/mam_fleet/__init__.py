"""The `mam` command: the fleet roster, its agents on a named tmux server, and the private broker.

Layers only look down: cli -> commands (fleet, agent, broker, adopt) -> managers, envfiles,
tmux -> roster, paths, runner, errors.
"""
