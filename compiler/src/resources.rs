//! Blobs that dense attributes refer to by handle: weights, held once and never printed.
//!
//! A blob is either owned bytes or a window into a shared read-only buffer (a memory-mapped
//! weights file, added by the importer), so loading a model does not copy its weights.

use crate::attributes::ResourceHandle;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Read-only bytes that can be shared between blobs (for example one memory map).
pub trait SharedBytes: Send + Sync + std::fmt::Debug {
    fn bytes(&self) -> &[u8];
}

impl SharedBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

#[derive(Clone, Debug)]
pub struct Blob {
    source: Arc<dyn SharedBytes>,
    offset: usize,
    len: usize,
}

impl Blob {
    pub fn owned(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        Blob { source: Arc::new(bytes), offset: 0, len }
    }

    /// A window of `source`; `None` when the window lies outside it.
    pub fn window(source: Arc<dyn SharedBytes>, offset: usize, len: usize) -> Option<Self> {
        let end = offset.checked_add(len)?;
        (end <= source.bytes().len()).then_some(Blob { source, offset, len })
    }

    /// A blob whose source produces its bytes on first access (it must produce `len` bytes).
    pub fn lazy(source: Arc<dyn SharedBytes>, len: usize) -> Self {
        Blob { source, offset: 0, len }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.source.bytes()[self.offset..self.offset + self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The module's named blobs. Names are unique; `insert` makes a fresh one on collision.
#[derive(Clone, Debug, Default)]
pub struct ResourceStore {
    blobs: BTreeMap<Arc<str>, Blob>,
}

impl ResourceStore {
    /// Stores `blob` under `preferred` (or `preferred_1`, `_2`, ... if taken).
    pub fn insert(&mut self, preferred: &str, blob: Blob) -> ResourceHandle {
        let mut name: Arc<str> = preferred.into();
        let mut n = 0;
        while self.blobs.contains_key(&name) {
            n += 1;
            name = format!("{preferred}_{n}").into();
        }
        self.blobs.insert(name.clone(), blob);
        ResourceHandle(name)
    }

    pub fn get(&self, handle: &ResourceHandle) -> Option<&Blob> {
        self.blobs.get(&handle.0)
    }

    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    pub fn total_bytes(&self) -> usize {
        self.blobs.values().map(|b| b.len).sum()
    }
}
