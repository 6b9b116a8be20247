//! Our client against a misbehaving server: garbage, a reply with an unknown xid, an
//! oversized frame, a server that closes mid-reply. Each time the client drops that
//! connection, the caller gets ConnectionLoss (never a panic or a hang), and the next
//! connection works.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zookeeper::client::ZooKeeper;
use zookeeper::jute::{OutputArchive, Record};
use zookeeper::proto::proto::{ConnectResponse, ReplyHeader, RequestHeader};
use zookeeper::proto::Code;

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut b = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut b)?;
    Ok(b)
}

fn write_frame(s: &mut TcpStream, body: &[u8]) {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    let _ = s.write_all(&f);
}

/// Accepts connections; the first `bad` requests (over all connections) get `mischief`,
/// later ones a proper NoNode reply. Pings are answered.
fn fake_server(mischief: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        let mut first = true;
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let bad = first;
            first = false;
            thread::spawn(move || {
                if read_frame(&mut s).is_err() {
                    return;
                }
                let mut out = OutputArchive::new();
                ConnectResponse { protocol_version: 0, time_out: 30000, session_id: 0x77, passwd: Some(vec![1; 16]) }.serialize(&mut out);
                out.write_bool(false);
                write_frame(&mut s, out.as_slice());
                while let Ok(req) = read_frame(&mut s) {
                    let Ok(h) = RequestHeader::from_bytes(&req) else { return };
                    if h.xid == -2 {
                        write_frame(&mut s, &ReplyHeader { xid: -2, zxid: 1, err: 0 }.to_bytes());
                        continue;
                    }
                    if bad {
                        match mischief {
                            "garbage" => {
                                let _ = s.write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5]);
                            }
                            "unknown-xid" => write_frame(&mut s, &ReplyHeader { xid: h.xid + 1000, zxid: 1, err: 0 }.to_bytes()),
                            "oversized" => {
                                let _ = s.write_all(&0x7fff_fff0i32.to_be_bytes());
                            }
                            _ => {
                                // Half a reply, then gone.
                                let _ = s.write_all(&[0, 0, 0, 16, 0, 0]);
                                return;
                            }
                        }
                        // Keep the socket open: the client must give up on its own.
                        thread::sleep(Duration::from_secs(20));
                        return;
                    }
                    write_frame(&mut s, &ReplyHeader { xid: h.xid, zxid: 1, err: Code::NoNode.int() }.to_bytes());
                }
            });
        }
    });
    addr
}

#[test]
fn client_survives_a_bad_server() {
    for mischief in ["garbage", "unknown-xid", "oversized", "half-reply"] {
        let addr = fake_server(mischief);
        let zk = Arc::new(ZooKeeper::connect(&addr, 30000, None).expect("connect"));
        let t = Instant::now();
        let first = zk.get_data("/x", None);
        assert_eq!(first.as_ref().map_err(|e| e.code), Err(Code::ConnectionLoss), "{mischief}: {first:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{mischief}: took {:?}", t.elapsed());
        // The next connection behaves: the error is the server's own answer.
        let end = Instant::now() + Duration::from_secs(10);
        let second = loop {
            let r = zk.get_data("/x", None);
            if r.as_ref().map_err(|e| e.code) != Err(Code::ConnectionLoss) || Instant::now() > end {
                break r;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(second.map_err(|e| e.code), Err(Code::NoNode), "{mischief}: no recovery");
    }
}
