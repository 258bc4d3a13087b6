"""The engine: actions and plans as data, receipts, the transaction, the lock, the one driver."""
