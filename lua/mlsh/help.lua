-- temporary alias while requires move to mlsh.cli.help (removed in the next commit)
return require "mlsh.cli.help"
