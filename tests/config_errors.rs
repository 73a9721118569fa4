//! Configuration errors ([`BuildError`]), unknown queue keys
//! ([`UnknownQueue`]), their messages, and the kinds of keys that work.

use std::error::Error;
use std::time::Duration;

use clockworker::{BuildError, Executor, ExecutorBuilder, QueueKey, UnknownQueue};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Class {
    Foreground,
    Background,
    Maintenance,
}

/// The error of a build that must fail.
fn build_error<K: QueueKey>(builder: ExecutorBuilder<K>) -> BuildError {
    match builder.build() {
        Ok(executor) => panic!("built an executor that should have been refused: {executor:?}"),
        Err(error) => error,
    }
}

/// The executor works: a task in each of `keys`' queues runs to completion.
fn assert_runs<K: QueueKey>(executor: &Executor<K>, keys: &[K]) {
    let handles: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| executor.queue(key.clone()).unwrap().spawn(async move { i }))
        .collect();
    let outputs = futures::executor::block_on(executor.run_until(async {
        let mut outputs = Vec::new();
        for handle in handles {
            outputs.push(handle.await.unwrap());
        }
        outputs
    }));
    assert_eq!(outputs, (0..keys.len()).collect::<Vec<_>>());
}

// ---------------------------------------------------------------- BuildError

#[test]
fn no_queues() {
    let error = build_error(ExecutorBuilder::<u32>::new());
    assert_eq!(error, BuildError::NoQueues);
    let message = error.to_string();
    assert!(message.contains("no queues"), "{message}");
    assert!(message.contains("with_queue"), "{message}");
    // Also through `Default`.
    assert_eq!(
        build_error(ExecutorBuilder::<Class>::default()),
        BuildError::NoQueues
    );
}

#[test]
fn zero_weight_names_the_queue() {
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue(Class::Foreground, 4)
            .with_queue(Class::Maintenance, 0),
    );
    assert_eq!(
        error,
        BuildError::ZeroWeight {
            key: "Maintenance".into()
        }
    );
    let message = error.to_string();
    assert!(message.contains("Maintenance"), "{message}");
    assert!(message.contains("weight 0"), "{message}");
    assert!(!message.contains("Foreground"), "{message}");
}

#[test]
fn duplicate_key_names_the_queue() {
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue(Class::Foreground, 4)
            .with_queue(Class::Background, 1)
            .with_queue(Class::Foreground, 2),
    );
    assert_eq!(
        error,
        BuildError::DuplicateKey {
            key: "Foreground".into()
        }
    );
    let message = error.to_string();
    assert!(message.contains("Foreground"), "{message}");
    assert!(message.contains("twice"), "{message}");
    assert!(!message.contains("Background"), "{message}");
}

/// Equal `String` keys are duplicates even though they are distinct values.
#[test]
fn duplicate_string_keys_are_detected_by_value() {
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue(String::from("ingest"), 1)
            .with_queue("ingest".to_owned(), 1),
    );
    assert_eq!(
        error,
        BuildError::DuplicateKey {
            key: "\"ingest\"".into()
        }
    );
    assert!(error.to_string().contains("\"ingest\""), "{error}");
}

#[test]
fn zero_sched_latency() {
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue(1u8, 1)
            .with_sched_latency(Duration::ZERO),
    );
    assert!(
        matches!(
            error,
            BuildError::InvalidDuration {
                setting: "sched_latency",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("sched_latency"), "{message}");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn zero_min_slice() {
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue(1u8, 1)
            .with_min_slice(Duration::ZERO),
    );
    assert!(
        matches!(
            error,
            BuildError::InvalidDuration {
                setting: "min_slice",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("min_slice"), "{message}");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn zero_max_polls_per_yield() {
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue(1u8, 1)
            .with_max_polls_per_yield(0),
    );
    assert_eq!(error, BuildError::ZeroPollBudget);
    let message = error.to_string();
    assert!(message.contains("max_polls_per_yield"), "{message}");
    assert!(message.contains('0'), "{message}");
}

/// The limits themselves are accepted: weight 1, one poll per yield, a
/// nanosecond of latency and slice, and a zero `driver_yield` (documented as
/// "after every poll"). The executor built with them runs tasks.
#[test]
fn smallest_valid_settings_build_and_run() {
    let executor = ExecutorBuilder::new()
        .with_queue(Class::Foreground, 1)
        .with_queue(Class::Background, u32::MAX)
        .with_sched_latency(Duration::from_nanos(1))
        .with_min_slice(Duration::from_nanos(1))
        .with_driver_yield(Duration::ZERO)
        .with_max_polls_per_yield(1)
        .build()
        .unwrap();
    assert_runs(&executor, &[Class::Foreground, Class::Background]);
}

/// The build errors are ordinary errors: `Send + Sync + 'static`, boxable,
/// usable with `?`.
#[test]
fn build_errors_are_std_errors() {
    fn build() -> Result<(), Box<dyn Error + Send + Sync>> {
        ExecutorBuilder::<&str>::new().build()?;
        Ok(())
    }
    let error = build().unwrap_err();
    assert_eq!(error.to_string(), BuildError::NoQueues.to_string());
    assert!(error.downcast_ref::<BuildError>().is_some());
}

// ---------------------------------------------------------------- UnknownQueue

#[test]
fn unknown_queue_names_the_key() {
    let executor = ExecutorBuilder::new()
        .with_queue(Class::Foreground, 1)
        .build()
        .unwrap();
    let error = executor.queue(Class::Background).unwrap_err();
    assert_eq!(error.key(), "Background");
    let message = error.to_string();
    assert!(message.contains("Background"), "{message}");
    assert!(message.contains("no queue"), "{message}");
    assert!(executor.queue(Class::Foreground).is_ok());

    // Through `?` into a boxed error.
    fn lookup(executor: &Executor<Class>) -> Result<(), Box<dyn Error + Send + Sync>> {
        executor.queue(Class::Maintenance)?;
        Ok(())
    }
    let boxed = lookup(&executor).unwrap_err();
    assert_eq!(
        boxed.downcast_ref::<UnknownQueue>().map(UnknownQueue::key),
        Some("Maintenance")
    );
}

#[test]
fn unknown_string_and_integer_keys() {
    let executor = ExecutorBuilder::new()
        .with_queue(String::from("ingest"), 1)
        .build()
        .unwrap();
    let error = executor.queue("ingest ".to_owned()).unwrap_err();
    assert_eq!(error.key(), "\"ingest \"");
    assert!(error.to_string().contains("\"ingest \""), "{error}");

    let executor = ExecutorBuilder::new().with_queue(7i64, 1).build().unwrap();
    let error = executor.queue(-7).unwrap_err();
    assert_eq!(error.key(), "-7");
    assert!(error.to_string().contains("-7"), "{error}");
}

// ---------------------------------------------------------------- key types

#[test]
fn enum_keys() {
    let keys = [Class::Foreground, Class::Background, Class::Maintenance];
    let mut builder = ExecutorBuilder::new();
    for (weight, key) in (1..).zip(keys) {
        builder = builder.with_queue(key, weight);
    }
    assert_runs(&builder.build().unwrap(), &keys);
}

#[test]
fn integer_keys() {
    let keys = [0u64, 1, u64::MAX];
    let mut builder = ExecutorBuilder::new();
    for key in keys {
        builder = builder.with_queue(key, 2);
    }
    let executor = builder.build().unwrap();
    assert_runs(&executor, &keys);
    assert_eq!(executor.queue(2).unwrap_err().key(), "2");

    let error = build_error(ExecutorBuilder::new().with_queue(-1i32, 0));
    assert_eq!(error, BuildError::ZeroWeight { key: "-1".into() });
    assert!(error.to_string().contains("-1"), "{error}");
}

#[test]
fn static_str_keys() {
    let keys = ["requests", "compaction"];
    let executor = ExecutorBuilder::new()
        .with_queue(keys[0], 8)
        .with_queue(keys[1], 1)
        .build()
        .unwrap();
    assert_runs(&executor, &keys);
    assert_eq!(executor.queue("flush").unwrap_err().key(), "\"flush\"");

    let error = build_error(ExecutorBuilder::new().with_queue("requests", 0));
    assert!(error.to_string().contains("\"requests\""), "{error}");
    let error = build_error(
        ExecutorBuilder::new()
            .with_queue("requests", 1)
            .with_queue("requests", 2),
    );
    assert!(error.to_string().contains("\"requests\""), "{error}");
}

#[test]
fn string_keys() {
    let keys: Vec<String> = (0..3).map(|i| format!("tenant-{i}")).collect();
    let mut builder = ExecutorBuilder::new();
    for key in &keys {
        builder = builder.with_queue(key.clone(), 1);
    }
    let executor = builder.build().unwrap();
    assert_runs(&executor, &keys);
    // Looked up by an equal, separately built `String`.
    assert!(executor.queue(format!("tenant-{}", 2)).is_ok());

    let error = build_error(ExecutorBuilder::new().with_queue(String::from("tenant-x"), 0));
    assert_eq!(
        error,
        BuildError::ZeroWeight {
            key: "\"tenant-x\"".into()
        }
    );
}

/// Other `Clone + Eq + Hash + Debug` types are keys too: unit, tuples.
#[test]
fn unit_and_tuple_keys() {
    let executor = ExecutorBuilder::new().with_queue((), 1).build().unwrap();
    assert_runs(&executor, &[()]);

    let keys = [("tenant", 1u8), ("tenant", 2u8)];
    let executor = ExecutorBuilder::new()
        .with_queue(keys[0], 1)
        .with_queue(keys[1], 1)
        .build()
        .unwrap();
    assert_runs(&executor, &keys);
    let error = executor.queue(("tenant", 3)).unwrap_err();
    assert_eq!(error.key(), "(\"tenant\", 3)");
}

/// More queues than an executor holds is a build error, found before any
/// queue is made.
#[test]
fn more_queues_than_an_executor_holds_is_a_build_error() {
    let builder = (0..=clockworker::MAX_QUEUES).fold(ExecutorBuilder::new(), |builder, key| {
        builder.with_queue(key, 1)
    });
    let error = build_error(builder);
    assert_eq!(error, BuildError::TooManyQueues);
    assert!(error.to_string().contains("65536"), "{error}");
}
