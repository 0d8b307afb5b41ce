-- temporary alias while requires move to mlsh.cli.repl (removed in the next commit)
return require "mlsh.cli.repl"
