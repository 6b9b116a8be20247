//! `getAcl [-s] path` (`GetAclCommand`).

use super::command_line::{self, opt, Options};
use super::{acl_parser, stat_printer, CliError, CliResult, Ctx};

pub const NAME: &str = "getAcl";
pub const OPTION_STR: &str = "[-s] path";

const OPTIONS: Options = Options::new(&[opt("s", false, "stats")]);

/// jute's `Utils.toCSVString`: a leading quote, and `\0 \n \r , } %` escaped.
fn csv_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    super::validate_path(path)?;
    let (acl, stat) = ctx.zk.get_acl(path).map_err(|e| CliError::wrap(&e))?;
    for a in &acl {
        // Id.toString() is jute's CSV form: 'scheme,'id
        super::out(&format!("{},{}\n: {}", csv_string(&a.id.scheme), csv_string(&a.id.id), acl_parser::perm_string(a.perms)));
    }
    if cl.has("s") {
        stat_printer::print(&stat);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_escapes() {
        assert_eq!(super::csv_string("anyone"), "'anyone");
        assert_eq!(super::csv_string("u:a%b,c}"), "'u:a%25b%2Cc%7D");
    }
}
