//! Generates the collectd bindings from the headers of the collectd we run
//! against (Debian `collectd-dev`), so struct layouts and field limits such as
//! `DATA_MAX_NAME_LEN` come from the real daemon instead of a hand copy.

use std::env;
use std::path::PathBuf;

fn main() {
    let include_dir =
        env::var("COLLECTD_INCLUDE_DIR").unwrap_or_else(|_| "/usr/include/collectd".to_string());
    let include = PathBuf::from(&include_dir);
    let header = include.join("core/daemon/plugin.h");
    println!("cargo:rerun-if-env-changed=COLLECTD_INCLUDE_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    if !header.exists() {
        panic!(
            "collectd headers not found at {} (install Debian's collectd-dev, \
             or set COLLECTD_INCLUDE_DIR to the directory holding core/daemon/plugin.h)",
            header.display()
        );
    }
    println!("cargo:rerun-if-changed={}", header.display());
    // The headers include each other as "collectd/core/..." and as "core/...".
    let parent = include
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg(format!("-I{}", parent.display()))
        // Only what the FFI module uses; everything else stays out of the crate.
        .allowlist_type("value_list_t")
        .allowlist_type("data_set_t")
        .allowlist_type("notification_t")
        .allowlist_type("oconfig_item_t")
        .allowlist_type("user_data_t")
        .allowlist_function("plugin_register_complex_config")
        .allowlist_function("plugin_register_init")
        .allowlist_function("plugin_register_write")
        .allowlist_function("plugin_register_notification")
        .allowlist_function("plugin_register_missing")
        .allowlist_function("plugin_register_shutdown")
        .allowlist_function("plugin_dispatch_notification")
        .allowlist_function("plugin_dispatch_values")
        .allowlist_function("plugin_register_read")
        .allowlist_function("plugin_log")
        .allowlist_function("oconfig_parse_file")
        .allowlist_function("oconfig_free")
        .allowlist_function("global_option_get")
        .allowlist_function("meta_data_exists")
        .allowlist_function("meta_data_get_string")
        .allowlist_var("hostname_g")
        .allowlist_var("DATA_MAX_NAME_LEN")
        .allowlist_var("NOTIF_MAX_MSG_LEN")
        .allowlist_var("DS_TYPE_.*")
        .allowlist_var("OCONFIG_TYPE_.*")
        .allowlist_var("LOG_(ERR|WARNING|NOTICE|INFO|DEBUG)")
        .derive_default(true)
        .layout_tests(false)
        .generate()
        .expect("bindgen failed on the collectd headers");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings
        .write_to_file(out.join("collectd_bindings.rs"))
        .expect("cannot write collectd bindings");
}
