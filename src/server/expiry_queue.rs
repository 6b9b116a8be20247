//! `ExpiryQueue`: elements bucketed by expiry time rounded up to the next multiple of
//! the expiration interval (tickTime), so one wake-up expires a whole bucket.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::common::time;

pub struct ExpiryQueue<E: Hash + Eq + Clone> {
    elem_map: HashMap<E, i64>,
    expiry_map: HashMap<i64, HashSet<E>>,
    next_expiration_time: i64,
    expiration_interval: i64,
}

impl<E: Hash + Eq + Clone> ExpiryQueue<E> {
    pub fn new(expiration_interval: i64) -> Self {
        let interval = expiration_interval.max(1);
        ExpiryQueue {
            elem_map: HashMap::new(),
            expiry_map: HashMap::new(),
            next_expiration_time: (time::current_elapsed_time() / interval + 1) * interval,
            expiration_interval: interval,
        }
    }

    fn round_to_next_interval(&self, t: i64) -> i64 {
        (t / self.expiration_interval + 1) * self.expiration_interval
    }

    pub fn remove(&mut self, elem: &E) -> Option<i64> {
        let t = self.elem_map.remove(elem)?;
        if let Some(set) = self.expiry_map.get_mut(&t) {
            set.remove(elem);
            if set.is_empty() {
                self.expiry_map.remove(&t);
            }
        }
        Some(t)
    }

    /// Moves `elem` to the bucket for now + timeout; returns the new expiry time.
    pub fn update(&mut self, elem: E, timeout: i64) -> Option<i64> {
        let prev = self.elem_map.get(&elem).copied();
        let new_time = self.round_to_next_interval(time::current_elapsed_time() + timeout);
        if prev == Some(new_time) {
            return None;
        }
        self.expiry_map.entry(new_time).or_default().insert(elem.clone());
        self.elem_map.insert(elem.clone(), new_time);
        if let Some(p) = prev {
            if let Some(set) = self.expiry_map.get_mut(&p) {
                set.remove(&elem);
                if set.is_empty() {
                    self.expiry_map.remove(&p);
                }
            }
        }
        Some(new_time)
    }

    /// Milliseconds until the next bucket is due (0 if it is).
    pub fn wait_time(&self) -> i64 {
        let now = time::current_elapsed_time();
        if now < self.next_expiration_time {
            self.next_expiration_time - now
        } else {
            0
        }
    }

    /// Takes the due bucket, if any, and advances to the next one.
    pub fn poll(&mut self) -> Vec<E> {
        let now = time::current_elapsed_time();
        if now < self.next_expiration_time {
            return Vec::new();
        }
        let t = self.next_expiration_time;
        self.next_expiration_time = t + self.expiration_interval;
        match self.expiry_map.remove(&t) {
            Some(set) => {
                for e in &set {
                    self.elem_map.remove(e);
                }
                set.into_iter().collect()
            }
            None => Vec::new(),
        }
    }

    pub fn expiry_time(&self, elem: &E) -> Option<i64> {
        self.elem_map.get(elem).copied()
    }

    /// Buckets and their elements, for `dump`.
    pub fn buckets(&self) -> Vec<(i64, Vec<E>)> {
        let mut v: Vec<_> = self.expiry_map.iter().map(|(t, s)| (*t, s.iter().cloned().collect())).collect();
        v.sort_by_key(|(t, _)| *t);
        v
    }
}
