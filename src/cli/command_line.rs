//! The subset of commons-cli's `DefaultParser` (1.5) that zkCli's commands rely on:
//! single-dash options (also multi-letter ones such as reconfig's `-members`), option
//! values as the next word or glued on (`-t3600`, `-t=3600`), concatenated flags
//! (`-se`), options anywhere on the line, `--` ending option parsing, one option group
//! (optionally required). Errors carry the text of `ParseException.toString()`, which
//! is what zkCli prints (`CliParseException` wraps the exception as its cause).

/// One option: its name, whether it takes a value, its description (used in messages).
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub name: &'static str,
    pub has_arg: bool,
    pub desc: &'static str,
}

pub const fn opt(name: &'static str, has_arg: bool, desc: &'static str) -> Opt {
    Opt { name, has_arg, desc }
}

/// `Options`: the options, and which of them form an `OptionGroup` (mutually exclusive).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub opts: &'static [Opt],
    pub group: &'static [&'static str],
    pub group_required: bool,
}

impl Options {
    pub const fn new(opts: &'static [Opt]) -> Options {
        Options { opts, group: &[], group_required: false }
    }

    fn get(&self, name: &str) -> Option<&Opt> {
        self.opts.iter().find(|o| o.name == name)
    }
}

/// `CommandLine`: the options seen (in order, with their values) and the other words.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    opts: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
}

impl CommandLine {
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }

    /// `getOptionValue`: the first value given for the option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.as_deref())
    }
}

fn unrecognized(token: &str) -> String {
    format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {token}")
}

fn missing_argument(name: &str) -> String {
    format!("org.apache.commons.cli.MissingArgumentException: Missing argument for option: {name}")
}

struct Parser<'a> {
    options: &'a Options,
    cl: CommandLine,
    /// Index in `cl.opts` of an option still waiting for its value.
    current: Option<usize>,
    selected: Option<&'static str>,
}

impl Parser<'_> {
    fn is_short_option(&self, token: &str) -> bool {
        if !token.starts_with('-') || token.len() == 1 {
            return false;
        }
        let body = &token[1..];
        let name = body.split_once('=').map_or(body, |(n, _)| n);
        if self.options.get(name).is_some() {
            return true;
        }
        name.chars().next().is_some_and(|c| self.options.get(c.encode_utf8(&mut [0; 4])).is_some())
    }

    fn is_argument(&self, token: &str) -> bool {
        // Double.parseDouble accepts more forms; plain negative numbers are what matters.
        let negative_number = token.starts_with('-') && token[1..].parse::<f64>().is_ok();
        !self.is_short_option(token) || negative_number
    }

    fn check_required_args(&self) -> Result<(), String> {
        match self.current {
            Some(i) if self.cl.opts[i].1.is_none() => Err(missing_argument(self.cl.opts[i].0)),
            _ => Ok(()),
        }
    }

    fn handle_option(&mut self, o: &Opt) -> Result<(), String> {
        self.check_required_args()?;
        if self.options.group.contains(&o.name) {
            match self.selected {
                Some(s) if s != o.name => {
                    return Err(format!(
                        "org.apache.commons.cli.AlreadySelectedException: The option '{}' was specified but an option from this group has already been selected: '{s}'",
                        o.name
                    ))
                }
                _ => self.selected = Some(o.name),
            }
        }
        self.cl.opts.push((o.name, None));
        self.current = o.has_arg.then_some(self.cl.opts.len() - 1);
        Ok(())
    }

    fn set_value(&mut self, v: &str) {
        if let Some(i) = self.current.take() {
            self.cl.opts[i].1 = Some(v.to_owned());
        }
    }

    fn handle_unknown(&mut self, token: &str) -> Result<(), String> {
        if token.starts_with('-') && token.len() > 1 {
            return Err(unrecognized(token));
        }
        self.cl.args.push(token.to_owned());
        Ok(())
    }

    fn handle_concatenated(&mut self, token: &str) -> Result<(), String> {
        let chars: Vec<(usize, char)> = token.char_indices().skip(1).collect();
        for (k, &(i, c)) in chars.iter().enumerate() {
            let mut buf = [0; 4];
            let Some(o) = self.options.get(c.encode_utf8(&mut buf)).copied() else {
                return self.handle_unknown(token);
            };
            self.handle_option(&o)?;
            if self.current.is_some() && k + 1 < chars.len() {
                let rest = &token[i + c.len_utf8()..];
                self.set_value(rest);
                break;
            }
        }
        Ok(())
    }

    fn handle_short(&mut self, token: &str) -> Result<(), String> {
        let t = &token[1..];
        match t.split_once('=') {
            None => {
                if let Some(o) = self.options.get(t).copied() {
                    self.handle_option(&o)
                } else if t.chars().count() == 1 {
                    self.handle_unknown(token)
                } else {
                    self.handle_concatenated(token)
                }
            }
            Some((name, value)) => match self.options.get(name).copied() {
                Some(o) if name.chars().count() == 1 && o.has_arg => {
                    self.handle_option(&o)?;
                    self.set_value(value);
                    Ok(())
                }
                _ => self.handle_unknown(token),
            },
        }
    }
}

/// `DefaultParser.parse(options, args)` (args include the command word itself, as
/// zkCli passes them).
pub fn parse(options: &Options, tokens: &[String]) -> Result<CommandLine, String> {
    let mut p = Parser { options, cl: CommandLine::default(), current: None, selected: None };
    let mut skip = false;
    for token in tokens {
        if skip {
            p.cl.args.push(token.clone());
        } else if token == "--" {
            skip = true;
        } else if p.current.is_some() && p.is_argument(token) {
            p.set_value(token);
        } else if token.starts_with("--") {
            // No zkCli command has long options.
            p.handle_unknown(token)?;
        } else if token.starts_with('-') && token != "-" {
            p.handle_short(token)?;
        } else {
            p.handle_unknown(token)?;
        }
    }
    p.check_required_args()?;
    if options.group_required && p.selected.is_none() {
        let list: Vec<String> = options
            .group
            .iter()
            .filter_map(|n| options.get(n))
            .map(|o| format!("-{} {}", o.name, o.desc))
            .collect();
        return Err(format!("org.apache.commons.cli.MissingOptionException: Missing required option: [{}]", list.join(", ")));
    }
    Ok(p.cl)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: Options = Options::new(&[opt("s", false, "stat"), opt("e", false, "e"), opt("t", true, "ttl")]);

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_like_commons_cli() {
        let cl = parse(&OPTS, &words("create -s /a -t 5 data")).unwrap();
        assert!(cl.has("s") && !cl.has("e"));
        assert_eq!(cl.value("t"), Some("5"));
        assert_eq!(cl.args, words("create /a data"));
        let cl = parse(&OPTS, &words("create -se -t-5 /a")).unwrap();
        assert!(cl.has("s") && cl.has("e"));
        assert_eq!(cl.value("t"), Some("-5"));
        assert_eq!(parse(&OPTS, &words("create -x /a")).unwrap_err(), unrecognized("-x"));
        assert_eq!(parse(&OPTS, &words("create -sx /a")).unwrap_err(), unrecognized("-sx"));
        assert_eq!(parse(&OPTS, &words("create /a -t")).unwrap_err(), missing_argument("t"));
        assert_eq!(parse(&OPTS, &words("create -t -s /a")).unwrap_err(), missing_argument("t"));
        assert_eq!(parse(&OPTS, &words("create -t -5 /a")).unwrap().value("t"), Some("-5"));
        assert_eq!(parse(&OPTS, &words("create -- -s")).unwrap().args, words("create -s"));
    }
}
