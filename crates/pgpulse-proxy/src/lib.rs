//! The pgpulse data path: the listener, client sessions, server connections,
//! pools, prepared-statement mapping, the cancel map and the admin console.
#![warn(missing_docs)]
