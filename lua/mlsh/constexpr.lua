-- temporary alias while requires move to mlsh.model.constexpr (removed in the next commit)
return require "mlsh.model.constexpr"
