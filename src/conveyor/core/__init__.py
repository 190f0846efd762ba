"""Pure logic: no AWS calls, no I/O. Function modules and the local runtime build on it."""
