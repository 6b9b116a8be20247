//! Multi framing (`MultiOperationRecord`, `MultiResponse`): a sequence of
//! `MultiHeader` + record pairs closed by `MultiHeader{-1, true, -1}`.

use crate::jute::{InputArchive, JuteError, OutputArchive, Record, Result};

use super::consts::{op_code, CreateMode};
use super::data::Stat;
use super::proto::*;

/// One operation of a multi or multiRead request, with the opcode upstream's `Op`
/// factory assigns (a create2 sub-op decodes as plain create; the create mode picks
/// createTTL/createContainer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create { op: i32, req: CreateTTLRequest, ttl_record: bool },
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl Op {
    pub fn op_code(&self) -> i32 {
        match self {
            Op::Create { op, .. } => *op,
            Op::Delete(_) => op_code::DELETE,
            Op::SetData(_) => op_code::SET_DATA,
            Op::Check(_) => op_code::CHECK,
            Op::GetChildren(_) => op_code::GET_CHILDREN,
            Op::GetData(_) => op_code::GET_DATA,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Op::Create { req, .. } => &req.path,
            Op::Delete(r) => &r.path,
            Op::SetData(r) => &r.path,
            Op::Check(r) => &r.path,
            Op::GetChildren(r) => &r.path,
            Op::GetData(r) => &r.path,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Op::GetChildren(_) | Op::GetData(_))
    }

    fn create_op_code(flags: i32) -> i32 {
        let mode = CreateMode::from_flag(flags).unwrap_or(CreateMode::Persistent);
        if mode.is_ttl() {
            op_code::CREATE_TTL
        } else if mode.is_container() {
            op_code::CREATE_CONTAINER
        } else {
            op_code::CREATE
        }
    }

    fn serialize(&self, out: &mut OutputArchive) {
        MultiHeader { r#type: self.op_code(), done: false, err: -1 }.serialize(out);
        match self {
            Op::Create { req, ttl_record: true, .. } => req.serialize(out),
            Op::Create { req, .. } => CreateRequest {
                path: req.path.clone(),
                data: req.data.clone(),
                acl: req.acl.clone(),
                flags: req.flags,
            }
            .serialize(out),
            Op::Delete(r) => r.serialize(out),
            Op::SetData(r) => r.serialize(out),
            Op::Check(r) => r.serialize(out),
            Op::GetChildren(r) => r.serialize(out),
            Op::GetData(r) => r.serialize(out),
        }
    }
}

/// The body of a multi (14) or multiRead (22) request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiOperationRecord {
    pub ops: Vec<Op>,
}

impl Record for MultiOperationRecord {
    fn serialize(&self, out: &mut OutputArchive) {
        for op in &self.ops {
            op.serialize(out);
        }
        MultiHeader { r#type: -1, done: true, err: -1 }.serialize(out);
    }

    fn deserialize(inp: &mut InputArchive<'_>) -> Result<Self> {
        let mut ops: Vec<Op> = Vec::new();
        let mut h = MultiHeader::deserialize(inp)?;
        while !h.done {
            let op = match h.r#type {
                op_code::CREATE | op_code::CREATE2 | op_code::CREATE_CONTAINER => {
                    let r = CreateRequest::deserialize(inp)?;
                    Op::Create {
                        op: Op::create_op_code(r.flags),
                        // Upstream's Op.Create carries no TTL; the prep stage sees -1.
                        req: CreateTTLRequest { path: r.path, data: r.data, acl: r.acl, flags: r.flags, ttl: -1 },
                        ttl_record: false,
                    }
                }
                op_code::CREATE_TTL => {
                    let r = CreateTTLRequest::deserialize(inp)?;
                    let is_ttl = CreateMode::from_flag(r.flags).map(|m| m.is_ttl()).unwrap_or(false);
                    // A createTTL op with a non-TTL mode becomes a plain Create (ttl dropped).
                    let r = if is_ttl { r } else { CreateTTLRequest { ttl: -1, ..r } };
                    Op::Create { op: Op::create_op_code(r.flags), req: r, ttl_record: is_ttl }
                }
                op_code::DELETE => Op::Delete(DeleteRequest::deserialize(inp)?),
                op_code::SET_DATA => Op::SetData(SetDataRequest::deserialize(inp)?),
                op_code::CHECK => Op::Check(CheckVersionRequest::deserialize(inp)?),
                op_code::GET_CHILDREN => Op::GetChildren(GetChildrenRequest::deserialize(inp)?),
                op_code::GET_DATA => Op::GetData(GetDataRequest::deserialize(inp)?),
                _ => return Err(JuteError::Invalid("Invalid type of op".into())),
            };
            if let Some(first) = ops.first() {
                if first.is_read() != op.is_read() {
                    return Err(JuteError::Invalid("Mixing different kind of ops".into()));
                }
            }
            ops.push(op);
            h = MultiHeader::deserialize(inp)?;
        }
        Ok(MultiOperationRecord { ops })
    }
}

/// One result of a multi response (`OpResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create { path: String },
    Create2 { path: String, stat: Stat },
    Delete,
    SetData { stat: Stat },
    Check,
    GetChildren { children: Vec<String> },
    GetData { data: Option<Vec<u8>>, stat: Stat },
    Error { err: i32 },
}

impl OpResult {
    pub fn op_code(&self) -> i32 {
        match self {
            OpResult::Create { .. } => op_code::CREATE,
            OpResult::Create2 { .. } => op_code::CREATE2,
            OpResult::Delete => op_code::DELETE,
            OpResult::SetData { .. } => op_code::SET_DATA,
            OpResult::Check => op_code::CHECK,
            OpResult::GetChildren { .. } => op_code::GET_CHILDREN,
            OpResult::GetData { .. } => op_code::GET_DATA,
            OpResult::Error { .. } => op_code::ERROR,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<OpResult>,
}

impl Record for MultiResponse {
    fn serialize(&self, out: &mut OutputArchive) {
        for r in &self.results {
            let err = if let OpResult::Error { err } = r { *err } else { 0 };
            MultiHeader { r#type: r.op_code(), done: false, err }.serialize(out);
            match r {
                OpResult::Create { path } => CreateResponse { path: path.clone() }.serialize(out),
                OpResult::Create2 { path, stat } => {
                    Create2Response { path: path.clone(), stat: stat.clone() }.serialize(out)
                }
                OpResult::Delete | OpResult::Check => {}
                OpResult::SetData { stat } => stat.serialize(out),
                OpResult::GetChildren { children } => {
                    GetChildrenResponse { children: children.clone() }.serialize(out)
                }
                OpResult::GetData { data, stat } => {
                    GetDataResponse { data: data.clone(), stat: stat.clone() }.serialize(out)
                }
                OpResult::Error { err } => ErrorResponse { err: *err }.serialize(out),
            }
        }
        MultiHeader { r#type: -1, done: true, err: -1 }.serialize(out);
    }

    fn deserialize(inp: &mut InputArchive<'_>) -> Result<Self> {
        let mut results = Vec::new();
        let mut h = MultiHeader::deserialize(inp)?;
        while !h.done {
            results.push(match h.r#type {
                op_code::CREATE => OpResult::Create { path: CreateResponse::deserialize(inp)?.path },
                op_code::CREATE2 => {
                    let r = Create2Response::deserialize(inp)?;
                    OpResult::Create2 { path: r.path, stat: r.stat }
                }
                op_code::DELETE => OpResult::Delete,
                op_code::SET_DATA => OpResult::SetData { stat: SetDataResponse::deserialize(inp)?.stat },
                op_code::CHECK => OpResult::Check,
                op_code::GET_CHILDREN => {
                    OpResult::GetChildren { children: GetChildrenResponse::deserialize(inp)?.children }
                }
                op_code::GET_DATA => {
                    let r = GetDataResponse::deserialize(inp)?;
                    OpResult::GetData { data: r.data, stat: r.stat }
                }
                op_code::ERROR => OpResult::Error { err: ErrorResponse::deserialize(inp)?.err },
                t => return Err(JuteError::Invalid(format!("Invalid type {t} in MultiResponse"))),
            });
            h = MultiHeader::deserialize(inp)?;
        }
        Ok(MultiResponse { results })
    }
}
