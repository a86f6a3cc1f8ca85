// local placeholder (the committed Package.swift names this target but its sources are not on main)
