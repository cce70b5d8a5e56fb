#!/usr/bin/env node
// The single `pkglog` command: dispatches to the module that owns each subcommand, loading only that module
// (the client and witness never load the log server's dependencies).
import { register } from 'tsx/esm/api';

register();

const COMMANDS = {
  serve: '../server/cli.ts',
  registry: '../server/cli.ts',
  witnesses: '../server/cli.ts',
  witness: '../witness/cli.ts',
  evidence: '../witness/cli.ts',
  keygen: '../client/cli.ts',
  submit: '../client/cli.ts',
  verify: '../client/cli.ts',
  proof: '../client/cli.ts',
  monitor: '../client/cli.ts',
  audit: '../client/cli.ts',
};

const USAGE = `pkglog — a transparency log for software package uploads

Usage: pkglog <command> [options]   (pkglog <command> --help for details)

The log:
  serve                 run the log (HTTP API, sequencer, SQLite store)
  registry add|list     configure registries allowed to submit
  witnesses add|list    configure witnesses the log asks for cosignatures
Witness:
  witness               run a witness; witness add-log|add-peer configure it
  evidence verify FILE  check fork evidence against a log's vkey
Clients:
  keygen                create a signer key file and print its vkey
  submit FILE           sign and submit an upload (publisher + registry keys)
  verify FILE           verify an artifact against the log and a trust policy
  proof FILE            fetch an offline tlog-proof for an artifact
  monitor               follow the log and report watched packages and keys
  audit                 replay the whole log and check every promise
`;

const [command, ...rest] = process.argv.slice(2);
if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(USAGE);
  process.exit(command === undefined ? 2 : 0);
}
const target = COMMANDS[command];
if (target === undefined) {
  process.stderr.write(`pkglog: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exit(2);
}
const mod = await import(new URL(target, import.meta.url).href);
const code = await mod.main([command, ...rest]);
if (typeof code === 'number') process.exitCode = code;
