//! A bit-exact `java.util.Random` (48-bit LCG): session passwords are
//! `new Random(sessionId ^ 0xB3415C00L).nextBytes(16)` on every server, so a client can
//! reconnect to a Java or a Rust node with the same password.

const MULTIPLIER: i64 = 0x5DEECE66D;
const ADDEND: i64 = 0xB;
const MASK: i64 = (1 << 48) - 1;

pub struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    pub fn new(seed: i64) -> Self {
        JavaRandom { seed: (seed ^ MULTIPLIER) & MASK }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND)) & MASK;
        (self.seed >> (48 - bits)) as i32
    }

    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    fn next_bits(&mut self, bits: u32) -> i32 {
        self.next(bits)
    }

    /// `Random.nextFloat`.
    pub fn next_float(&mut self) -> f32 {
        self.next_bits(24) as f32 / (1u32 << 24) as f32
    }

    /// `Random.nextInt(bound)`, bound > 0: rejection sampling exactly as the JDK does.
    pub fn next_int_bounded(&mut self, bound: i32) -> i32 {
        let mut r = self.next_bits(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((bound as i64 * r as i64) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next_bits(31);
        }
    }

    /// `Random.nextLong`.
    pub fn next_long(&mut self) -> i64 {
        let hi = self.next_bits(32) as i64;
        let lo = self.next_bits(32) as i64;
        (hi << 32).wrapping_add(lo)
    }

    /// `Collections.shuffle(list, rnd)` (random-access form).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (2..=v.len()).rev() {
            let j = self.next_int_bounded(i as i32) as usize;
            v.swap(i - 1, j);
        }
    }

    pub fn next_bytes(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let mut rnd = self.next_int();
            let n = (out.len() - i).min(4);
            for _ in 0..n {
                out[i] = rnd as u8;
                rnd >>= 8;
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java() {
        // new java.util.Random(42).nextInt() == -1170105035
        assert_eq!(JavaRandom::new(42).next_int(), -1170105035);
        let mut b = [0u8; 4];
        JavaRandom::new(42).next_bytes(&mut b);
        assert_eq!(i32::from_le_bytes(b), -1170105035);
    }
}
