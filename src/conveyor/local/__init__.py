"""The embedded default: the same functions on a local AWS emulator, on one machine."""
