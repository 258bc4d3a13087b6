"""The concrete actions: files and directories, rc blocks, commands."""
