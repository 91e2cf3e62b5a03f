//! The firewall-side connector (SPEC §8): Junos-style configuration, commit check and the
//! failover state machine. Pure code: no sockets, no clock.
#![forbid(unsafe_code)]
