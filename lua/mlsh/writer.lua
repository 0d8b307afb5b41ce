-- temporary alias while requires move to mlsh.model.writer (removed in the next commit)
return require "mlsh.model.writer"
