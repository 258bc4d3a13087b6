"""This machine: detection, init system, shells, filesystems, where each scope's files go,
doctor."""
