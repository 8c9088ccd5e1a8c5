//! Just enough of the protobuf wire format to read a MetaGraphDef's SaverDef (the names of the
//! save function's filename input and output), which the tensorflow crate does not expose.

/// `saver_def` of a MetaGraphDef: (filename_tensor_name, save_tensor_name), if present.
pub fn saver_def(meta_graph_def: &[u8]) -> Option<(String, String)> {
    let saver = field(meta_graph_def, 3)?;
    let filename = String::from_utf8(field(saver, 1)?.to_vec()).ok()?;
    let save = String::from_utf8(field(saver, 2)?.to_vec()).ok()?;
    Some((filename, save))
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The first length-delimited field `number` of a message.
fn field(msg: &[u8], number: u64) -> Option<&[u8]> {
    let mut pos = 0;
    while pos < msg.len() {
        let key = varint(msg, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(msg, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = varint(msg, &mut pos)? as usize;
                let body = msg.get(pos..pos.checked_add(len)?)?;
                pos += len;
                if num == number {
                    return Some(body);
                }
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_strings() {
        // MetaGraphDef { 1: "x", 3: SaverDef { 1: "f:0", 2: "s:0" } }
        let saver = [0x0a, 3, b'f', b':', b'0', 0x12, 3, b's', b':', b'0'];
        let mut msg = vec![0x0a, 1, b'x', 0x1a, saver.len() as u8];
        msg.extend_from_slice(&saver);
        assert_eq!(saver_def(&msg), Some(("f:0".into(), "s:0".into())));
        assert_eq!(saver_def(&[0x0a, 1, b'x']), None);
        assert_eq!(
            saver_def(&[0x1a, 200]),
            None,
            "truncated input is not a panic"
        );
    }
}
