//! Small, tested value parsers shared by the commands (durations, skews, host:port, on/off).
