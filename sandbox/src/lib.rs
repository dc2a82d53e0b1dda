//! Runtime analysis of an image's entrypoint in an isolated sandbox.
//!
//! Not built yet: the runtime-sandbox issue fills this crate (rootfs from the analyzer's
//! layer walk, Linux namespaces, seccomp, a syscall tracer and a sinkhole network). It is
//! the only crate of the workspace allowed `unsafe`, each block with a `// SAFETY:` line.
