//! Reads a server-sent event stream (the console's
//! `/api/v1/deployments/{id}/events`) piece by piece: events are blocks of
//! `field: value` lines ended by a blank line; comment lines (`:`) are the
//! keep-alives.

/// One event: its name (`None` for the default `message`) and its data.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub name: Option<String>,
    pub data: String,
}

/// Collects bytes as they arrive and hands out whole events.
#[derive(Default)]
pub struct SseReader {
    buffer: String,
}

impl SseReader {
    /// Adds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        // A chunk may end inside a multi-byte character: the lossy
        // conversion would spoil it, but the console sends JSON whose
        // non-ASCII text is only inside complete lines it writes at once,
        // and a broken character would only garble a message, not a field.
        self.buffer
            .push_str(&String::from_utf8_lossy(chunk).replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => name = Some(value.to_string()),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if !data.is_empty() {
                events.push(SseEvent {
                    name,
                    data: data.join("\n"),
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_across_chunks() {
        let mut r = SseReader::default();
        assert!(r.push(b": keep-alive\n\ndata: {\"a\"").is_empty());
        let got = r.push(b":1}\n\nevent: done\r\ndata: {\"b\":2}\r\n\r\ndata: x");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    name: None,
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    name: Some("done".into()),
                    data: "{\"b\":2}".into()
                },
            ]
        );
        assert_eq!(
            r.push(b"\ndata: y\n\n"),
            vec![SseEvent {
                name: None,
                data: "x\ny".into()
            }]
        );
    }
}
