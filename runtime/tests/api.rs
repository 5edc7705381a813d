//! The app-facing API's promises that hold without a device: which types are
//! thread-safe, that an app can keep a model beside its session, and that a
//! host tensor's bytes always match its shape.

use seam_core::DType;
use seam_runtime::{Entry, Error, HostTensor, Model, RunOutput, Runtime, Session};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn the_documented_types_are_send_and_sync() {
    assert_send_sync::<Runtime>();
    assert_send_sync::<Model>();
    assert_send_sync::<Entry>();
    assert_send_sync::<Session>();
    assert_send_sync::<HostTensor>();
    assert_send_sync::<RunOutput>();
    assert_send_sync::<Error>();
}

/// What an app holds: a model, an entry point and a session, side by side.
#[allow(dead_code)]
struct App {
    model: Model,
    forward: Entry,
    session: Session,
}

#[test]
fn an_app_keeps_a_model_and_its_session_in_one_struct() {
    fn open(model: Model) -> Result<App, Error> {
        Ok(App {
            forward: model.entry("forward")?,
            session: model.session()?,
            model,
        })
    }
    let _: fn(Model) -> Result<App, Error> = open;
}

#[test]
fn host_tensors_check_their_size() {
    let t = HostTensor::from_f32(vec![2, 3], &[1.0; 6]).unwrap();
    assert_eq!(t.shape(), [2, 3]);
    assert_eq!(t.dtype(), DType::F32);
    assert_eq!(t.bytes().len(), 24);
    assert_eq!(t.len(), 6);
    assert!(matches!(
        HostTensor::from_i32(vec![2, 3], &[1; 5]),
        Err(Error::Input(_))
    ));
    let f16 = HostTensor::from_bytes(DType::F16, vec![2], vec![0, 0x3c, 0, 0x40]).unwrap();
    assert_eq!(f16.to_f32(), [1.0, 2.0]);
    assert!(matches!(
        HostTensor::from_bytes(DType::F32, vec![2], vec![0; 7]),
        Err(Error::Input(_))
    ));
}

#[test]
fn an_overflowing_shape_is_refused() {
    let huge = vec![usize::MAX, 2];
    assert!(matches!(
        HostTensor::from_u32(huge.clone(), &[]),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        HostTensor::from_bytes(DType::F32, vec![usize::MAX / 2], Vec::new()),
        Err(Error::Input(_))
    ));
}
