//! A user's HTTP task backend as a turmoil host, answering per a scripted profile: succeed, fail,
//! hang past the task's timeout, or answer slowly. Its randomness comes from the run's seed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::net::SimListener;

pub const BACKEND_HOST: &str = "backend";
pub const BACKEND_PORT: u16 = 9000;

/// How the backend misbehaves, in permille of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profile {
    pub fail_permille: u32,
    pub hang_permille: u32,
    /// Answers take up to this long.
    pub max_delay_ms: u64,
}

/// The backend's answer, decided by the profile and the seed.
#[derive(Clone)]
pub struct Backend {
    profile: Arc<Mutex<Profile>>,
    rng: Arc<Mutex<SmallRng>>,
}

impl Backend {
    pub fn new(seed: u64) -> Backend {
        Backend { profile: Arc::default(), rng: Arc::new(Mutex::new(SmallRng::seed_from_u64(seed ^ 0xbac0_e4d0))) }
    }

    /// Changes how the backend answers from now on.
    pub fn set_profile(&self, profile: Profile) {
        *self.profile.lock().unwrap_or_else(|p| p.into_inner()) = profile;
    }

    fn draw(&self) -> (Profile, u32, u64) {
        let profile = *self.profile.lock().unwrap_or_else(|p| p.into_inner());
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let delay = if profile.max_delay_ms == 0 { 0 } else { rng.gen_range(0..=profile.max_delay_ms) };
        (profile, rng.gen_range(0..1000), delay)
    }

    async fn answer(&self, request: Value) -> (http::StatusCode, Json<Value>) {
        let (p, roll, delay) = self.draw();
        if roll < p.hang_permille {
            // Far past any task timeout in the scenarios.
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if roll < p.hang_permille + p.fail_permille {
            let body = json!({"status": "failed", "error": "scripted failure", "logs": "failing on purpose\n"});
            return (http::StatusCode::OK, Json(body));
        }
        let output = json!({"task": request["task_id"], "attempt": request["attempt"], "input": request["input"]});
        (http::StatusCode::OK, Json(json!({"status": "succeeded", "output": output, "logs": "done\n"})))
    }
}

/// Serves the backend until the host is crashed.
pub async fn run_backend(backend: Backend) -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new().route(
        "/task",
        post(move |Json(request): Json<Value>| {
            let backend = backend.clone();
            async move { backend.answer(request).await }
        }),
    );
    axum::serve(SimListener::bind(BACKEND_PORT).await?, app).await?;
    Ok(())
}
