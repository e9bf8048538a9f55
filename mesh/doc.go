// Package mesh turns volumes into triangle meshes and meshes into files and
// pictures: Extract finds the level set of a scalar field (marching cubes in
// its tetrahedral form, see march.go), the writers produce OBJ, binary STL
// and binary PLY, Measure reports volume, area, components and whether a
// mesh is closed and manifold, and Render draws shaded views (render.go).
//
// A Mesh's vertices are in grid units: vertex (x, y, z) is at voxel column
// x, row y, slice z of the volume it came from (y up).
package mesh
