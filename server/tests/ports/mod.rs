//! Loopback ports for a console a test starts as a child process.

/// `N` distinct free loopback ports. Every listener is held until all are
/// picked: asked one at a time, the kernel may hand the same just-released
/// port out twice, and a console whose preview address is its admin
/// address cannot start its proxy (seen in CI).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}
