//! Inference with bounded concurrency and a memory-bounded cache of prepared models.
//!
//! At most `max_concurrent` inferences run at once (each on a blocking thread); up to
//! `max_queued` more wait, each at most `queue_timeout`. Past that a request is refused at once
//! with 503 rather than left hanging. Prepared models are kept in an LRU cache whose budget is
//! counted in (estimated) bytes.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use lru::LruCache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vouch_engine::{EngineConfig, Execution, Model};
use vouch_types::{ModelId, NamedTensors};

use crate::{config::InferenceConfig, error::ApiError, metrics::Metrics};

/// A prepared model's memory, estimated from its file: weights once as read, once packed.
fn estimated_bytes(model_file_bytes: usize) -> u64 {
    (model_file_bytes as u64).saturating_mul(3).max(64 * 1024)
}

struct Cache {
    entries: LruCache<ModelId, (Arc<Model>, u64)>,
    used: u64,
    budget: u64,
}

impl Cache {
    fn get(&mut self, id: &ModelId) -> Option<Arc<Model>> {
        self.entries.get(id).map(|(m, _)| m.clone())
    }

    fn insert(&mut self, id: ModelId, model: Arc<Model>, cost: u64) {
        if let Some((_, old)) = self.entries.pop(&id) {
            self.used -= old;
        }
        while self.used + cost > self.budget {
            match self.entries.pop_lru() {
                Some((_, (_, c))) => self.used -= c,
                None => break,
            }
        }
        // A model over the whole budget still runs, but isn't kept.
        if cost <= self.budget {
            self.entries.put(id, (model, cost));
            self.used += cost;
        }
    }
}

/// The inference service.
pub struct Inference {
    engine: EngineConfig,
    settings: InferenceConfig,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    cache: Mutex<Cache>,
    metrics: Arc<Metrics>,
}

/// A held inference slot.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Inference {
    /// Builds the service; the engine profile is activated on the first model load.
    pub fn new(
        engine: EngineConfig,
        settings: InferenceConfig,
        metrics: Arc<Metrics>,
    ) -> Inference {
        Inference {
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            waiting: AtomicUsize::new(0),
            cache: Mutex::new(Cache {
                entries: LruCache::unbounded(),
                used: 0,
                budget: settings.model_cache_bytes,
            }),
            engine,
            settings,
            metrics,
        }
    }

    /// The engine configuration (profile, limits).
    pub fn engine(&self) -> &EngineConfig {
        &self.engine
    }

    /// Waits for a free slot, within the queue's bounds.
    pub async fn acquire(&self) -> Result<Slot, ApiError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.settings.max_queued {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.metrics
                .rejected
                .with_label_values(&["queue_full"])
                .inc();
            return Err(ApiError::overloaded(
                "every inference slot is busy and the queue is full",
            ));
        }
        let waited = tokio::time::timeout(
            self.settings.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(p)) => Ok(Slot(p)),
            Ok(Err(_)) => Err(ApiError::overloaded("the node is shutting down")),
            Err(_) => {
                self.metrics
                    .rejected
                    .with_label_values(&["queue_timeout"])
                    .inc();
                Err(ApiError::overloaded(format!(
                    "no inference slot freed up within {} ms",
                    self.settings.queue_timeout.as_millis()
                )))
            }
        }
    }

    /// The prepared model for `id`, from the cache or prepared from `bytes` (fetched lazily).
    pub async fn model<F, Fut>(&self, id: ModelId, fetch: F) -> Result<Arc<Model>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, ApiError>>,
    {
        if let Some(m) = self.cache.lock().expect("cache lock").get(&id) {
            self.metrics.model_cache.with_label_values(&["hit"]).inc();
            return Ok(m);
        }
        self.metrics.model_cache.with_label_values(&["miss"]).inc();
        let bytes = fetch().await?;
        if !id.matches(&bytes) {
            return Err(ApiError::internal(format!(
                "stored bytes for {id} do not hash to it"
            )));
        }
        let config = self.engine.clone();
        let cost = estimated_bytes(bytes.len());
        let model = tokio::task::spawn_blocking(move || Model::load(&bytes, &config))
            .await
            .map_err(|e| ApiError::internal(format!("model preparation stopped: {e}")))??;
        let model = Arc::new(model);
        let mut cache = self.cache.lock().expect("cache lock");
        cache.insert(id, model.clone(), cost);
        self.metrics.models_cached.set(cache.entries.len() as i64);
        Ok(model)
    }

    /// Reads the inputs with the model's dtypes and runs it, on a blocking thread.
    pub async fn run(
        &self,
        _slot: &Slot,
        model: Arc<Model>,
        inputs: serde_json::Value,
    ) -> Result<(NamedTensors, Execution), ApiError> {
        let timer = self.metrics.engine_seconds.start_timer();
        let result = tokio::task::spawn_blocking(move || {
            let inputs = vouch_engine::inputs_from_json(&model, &inputs)?;
            let execution = model.run(&inputs)?;
            Ok::<_, vouch_engine::EngineError>((inputs, execution))
        })
        .await
        .map_err(|e| ApiError::internal(format!("inference stopped: {e}")))?;
        timer.observe_duration();
        Ok(result?)
    }
}
