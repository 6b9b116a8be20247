//! `IPAuthenticationProvider`: `a.b.c.d` or `a.b.c.d/bits` (IPv4 only, as in 3.8.0).

fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        let v: u32 = p.parse().ok()?;
        if v > 255 {
            return None;
        }
        out[i] = v as u8;
    }
    Some(out)
}

fn parse_expr(expr: &str) -> Option<([u8; 4], u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()?),
        None => (expr, 32),
    };
    let a = parse_ipv4(addr)?;
    if bits > 32 {
        return None;
    }
    Some((a, bits))
}

pub fn is_valid(id: &str) -> bool {
    parse_expr(id).is_some()
}

pub fn matches(id: &str, acl_expr: &str) -> bool {
    let Some((net, bits)) = parse_expr(acl_expr) else { return false };
    let Some(addr) = parse_ipv4(id) else { return false };
    let mask: u32 = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from_be_bytes(net) & mask) == (u32::from_be_bytes(addr) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert!(matches("10.1.2.3", "10.1.0.0/16"));
        assert!(!matches("10.2.2.3", "10.1.0.0/16"));
        assert!(matches("127.0.0.1", "127.0.0.1"));
        assert!(!is_valid("localhost"));
    }
}
