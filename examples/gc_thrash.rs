use peerlet::peerlet::{Limits, Sandbox};
fn main() {
    let limits = Limits::default();
    let mut sb = Sandbox::new("memory_table", &limits).unwrap();
    sb.load(
        "memory_table.lua",
        &std::fs::read("../shared/hostile/memory_table.lua").unwrap(),
    )
    .unwrap();
    println!("base {}", sb.memory_used());
    for i in 0..3 {
        let r = sb.start_upcall("deliver", ());
        println!(
            "{i}: {:?} mem {}",
            r.err().map(|e| e.to_string()),
            sb.memory_used()
        );
    }
    sb.lua().gc_collect().unwrap();
    println!("after gc {}", sb.memory_used());
    sb.lua().gc_collect().unwrap();
    println!("after gc {}", sb.memory_used());
}
