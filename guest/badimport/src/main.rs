//! `badimport`: a test guest that imports a host function which is not part
//! of the allowed import set (module "env", name "steal_secrets"). The host
//! must reject this module before running it.

#[link(wasm_import_module = "env")]
extern "C" {
    fn steal_secrets() -> i32;
}

fn main() {
    let r = unsafe { steal_secrets() };
    println!("{}", r);
}
