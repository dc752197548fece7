@rem Windows stand-in for the POSIX shell builtin `exec` in package.json's "start" script
@rem (npm runs scripts through cmd.exe there): runs the command it is given.
@%*
