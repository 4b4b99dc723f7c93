//! collectd-monitor: automatic fault recovery for collectd hosts.
//!
//! The library is both the collectd plugin (`monitor.so`, a cdylib) and the
//! code the `collectd-monitor` command line shares with it. Data flows one
//! way: [`collectd`] (the only `unsafe`) -> [`plugin`] wiring -> [`events`]
//! queue -> engine thread; [`config`] and [`logging`] serve them all.

// `unsafe` lives in the FFI module only (`collectd`, which allows it and
// gives every block its reason); anywhere else it is a compile error.
#![deny(unsafe_code)]

pub mod actions;
pub mod amount;
pub mod auth;
pub mod central;
pub mod cli;
#[allow(unsafe_code)]
pub mod collectd;
pub mod config;
pub mod deploy;
pub mod events;
pub mod files;
pub mod history;
pub mod local;
pub mod logging;
pub mod lua;
pub mod mqtt;
pub mod panics;
pub mod pause;
mod plugin;
pub mod reconfig;
pub mod remote;
pub mod rules;
pub mod sandbox;
pub mod status;
pub mod task;
