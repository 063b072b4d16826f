"""Operations: leader election, health, metrics, logs."""
