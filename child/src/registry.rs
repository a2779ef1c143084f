//! Commands by name, with their typed request and summary erased behind JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use shm_proto::Command;
use shm_proto::control::CommandInfo;
use shm_proto::payload::RuntimeCode;

use crate::error::CommandError;
use crate::writer::{RowWriter, TypedRows};

type Handler = Box<dyn FnMut(&RawValue, &mut RowWriter<'_>) -> Result<Box<RawValue>, CommandError>>;

/// The commands a worker serves.
#[derive(Default)]
pub struct Registry {
    commands: Vec<(CommandInfo, Handler)>,
}

impl Registry {
    /// Registers `handler` under `name`. Its request type is decoded from the
    /// request's JSON arguments (a decode failure is a `bad_request` error)
    /// and its summary is encoded into the end marker. A later registration
    /// of the same name replaces the earlier one.
    pub fn add<Req, Sum, F>(&mut self, name: &str, description: &str, mut handler: F)
    where
        Req: DeserializeOwned,
        Sum: Serialize,
        F: FnMut(Req, &mut RowWriter<'_>) -> Result<Sum, CommandError> + 'static,
    {
        let erased: Handler = Box::new(move |args, writer| {
            let request: Req = serde_json::from_str(args.get())
                .map_err(|e| CommandError::bad_request(format!("arguments do not decode: {e}")))?;
            let summary = handler(request, writer)?;
            serde_json::value::to_raw_value(&summary)
                .map_err(|e| CommandError::runtime(RuntimeCode::BadSummary, e.to_string()))
        });
        let info = CommandInfo::new(name, description)
            .with_types(std::any::type_name::<Req>(), std::any::type_name::<Sum>());
        self.commands.retain(|(existing, _)| existing.name != name);
        self.commands.push((info, erased));
    }

    /// Registers `handler` as the implementation of command `C`: its name,
    /// request, row and summary types are the ones the supervisor's
    /// `Worker::run_typed::<C>` expects.
    pub fn add_typed<C: Command>(
        &mut self,
        mut handler: impl FnMut(
            C::Request,
            &mut TypedRows<'_, '_, C::Row>,
        ) -> Result<C::Summary, CommandError>
        + 'static,
    ) {
        self.add_typed_raw::<C>(move |request: C::Request, writer: &mut RowWriter<'_>| {
            handler(request, &mut TypedRows::new(writer))
        });
    }

    /// Registers `handler` as the implementation of command `C` whose rows
    /// are written as bytes through the plain [`RowWriter`]: for rows
    /// serialized elsewhere (by foreign code, such as a Lean worker's), which
    /// must be the JSON of `C::Row` for `Worker::run_typed::<C>` to decode
    /// them. Name, request, row and summary types are announced as for
    /// [`Registry::add_typed`].
    pub fn add_typed_raw<C: Command>(
        &mut self,
        handler: impl FnMut(C::Request, &mut RowWriter<'_>) -> Result<C::Summary, CommandError>
        + 'static,
    ) {
        self.add(C::NAME, C::DESCRIPTION, handler);
        if let Some((info, _)) = self
            .commands
            .iter_mut()
            .find(|(info, _)| info.name == C::NAME)
        {
            info.row = Some(std::any::type_name::<C::Row>().to_owned());
        }
    }

    /// What the handshake announces.
    pub fn infos(&self) -> Vec<CommandInfo> {
        self.commands.iter().map(|(info, _)| info.clone()).collect()
    }

    pub(crate) fn handler(&mut self, name: &str) -> Option<&mut Handler> {
        self.commands
            .iter_mut()
            .find(|(info, _)| info.name == name)
            .map(|(_, handler)| handler)
    }
}
