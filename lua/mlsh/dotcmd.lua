-- temporary alias while requires move to mlsh.cli.dotcmd (removed in the next commit)
return require "mlsh.cli.dotcmd"
