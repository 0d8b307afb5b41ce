-- temporary alias while requires move to mlsh.engine.playbook (removed in the next commit)
return require "mlsh.engine.playbook"
