//! Data-parallel pruning over MPI: the world of processes that `mpirun -n N` (or `srun`)
//! started, as the [`Collective`] that prune's loop and hooks use.
//!
//! ```no_run
//! use prune_train::{Collective, VerifyConsistent};
//! let world = prune_mpi::World::init()?;
//! println!("rank {} of {}", world.rank(), world.size());
//! # Ok::<(), prune_core::PruneError>(())
//! ```
//!
//! In a loop of one's own, per step: backward, then [`GradientReducer::average`], then
//! `on_before_optimizer_step`, the optimizer step and `on_step_end`; after each mask update,
//! `pruning.verify_consistent(&world)`. The built-in loop does all of it when the config's
//! `train.dataloader.distributed` is `True` (`prune::burn::train::fit_on` and its torch twin).
//!
//! [`GradientReducer::average`]: prune_train::GradientReducer::average

#![warn(missing_docs)]

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use prune_core::Result;
use prune_train::distributed::distributed_error;
pub use prune_train::{Collective, GradientReducer, SingleProcess, VerifyConsistent};

/// The MPI world: every process of the launch. MPI is finalised when it is dropped.
pub struct World {
    comm: SimpleCommunicator,
    /// Kept for its drop, which finalises MPI.
    _universe: Universe,
    /// Receive buffer of the all-reduce, reused from call to call.
    received: std::cell::RefCell<Vec<f32>>,
}

impl World {
    /// Initialises MPI (once per process). A program started without `mpirun` runs as a world
    /// of one.
    pub fn init() -> Result<World> {
        let universe = mpi::initialize().ok_or_else(|| {
            distributed_error("MPI was initialised already in this process".into())
        })?;
        Ok(World {
            comm: universe.world(),
            _universe: universe,
            received: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// Runs a rank's work. If it fails or panics, the error is printed (with the rank) and the
    /// whole job is stopped with exit status 1 (`MPI_Abort`), so that no other rank is left
    /// waiting in a collective for one that is gone. On success MPI is finalised.
    pub fn run<E: std::fmt::Display>(
        self,
        work: impl FnOnce(&World) -> std::result::Result<(), E>,
    ) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&self)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("rank {} of {}: error: {e:#}", self.rank(), self.size());
                self.comm.abort(1)
            }
            Err(_) => {
                eprintln!(
                    "rank {} of {}: panicked; stopping every rank",
                    self.rank(),
                    self.size()
                );
                self.comm.abort(1)
            }
        }
    }
}

impl Collective for World {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let mut received = self.received.borrow_mut();
        received.clear();
        received.resize(values.len(), 0.0);
        self.comm
            .all_reduce_into(&values[..], &mut received[..], SystemOperation::sum());
        values.copy_from_slice(&received);
        Ok(())
    }

    fn broadcast(&self, values: &mut [f32], root: usize) -> Result<()> {
        if root >= self.size() {
            return Err(distributed_error(format!(
                "broadcast from rank {root} in a world of {}",
                self.size()
            )));
        }
        self.comm
            .process_at_rank(root as i32)
            .broadcast_into(values);
        Ok(())
    }

    fn all_gather(&self, values: &[u64]) -> Result<Vec<u64>> {
        let mut all = vec![0u64; values.len() * self.size()];
        self.comm.all_gather_into(values, &mut all[..]);
        Ok(all)
    }
}
