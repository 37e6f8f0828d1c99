"""The garbage collector (garbage_collector: dependents whose owners are gone, foreground and
orphan deletion) and discovery (which resources the server serves, for it to watch)."""
