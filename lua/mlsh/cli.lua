-- temporary alias while requires move to mlsh.cli.main (removed in the next commit)
return require "mlsh.cli.main"
